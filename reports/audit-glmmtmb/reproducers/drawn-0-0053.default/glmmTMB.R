# glmmTMB's fit of the model in this folder, in the configuration audited (default).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (reference finding in theta: theta differs from lme4's optimum (rel diff 6.2e-01); lme4's optimum is the worse one: lme4's own REML at its theta is lower than lme4's optimum by 0.141 (lme4's REML at its theta 16.5409199, at lme4's optimum 16.68231476))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "g" = "character"))
data[["g"]] <- factor(data[["g"]], levels = c("tbm", "tu", "u"))

fit <- glmmTMB(y ~ 1 + (x | g), data = data, REML = TRUE,
               control = glmmTMBControl())

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
