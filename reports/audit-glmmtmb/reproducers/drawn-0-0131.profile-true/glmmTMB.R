# glmmTMB's fit of the model in this folder, in the configuration audited (profile=true).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (reference finding in theta: theta differs from lme4's optimum (rel diff 1.0e-02); lme4's optimum is the worse one: lme4's own ML at its theta is lower than lme4's optimum by 0.000715 (lme4's ML at its theta 242.2788036, at lme4's optimum 242.279519))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "s" = "integer", "t" = "integer"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))

fit <- glmmTMB(y ~ x + trt + (x | s/t), data = data, REML = FALSE,
               control = glmmTMBControl(profile = TRUE))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
