# glmmTMB's fit of the model in this folder, in the configuration audited (default).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 3.9e-03); lme4's optimum is lower: the REML at its theta is higher by 3.05e-05 (lme4's REML at its theta 18.40351195, at lme4's optimum 18.40348144))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "f" = "character", "g" = "character"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))
data[["g"]] <- factor(data[["g"]], levels = c("6a", "w"))

fit <- glmmTMB(y ~ 1 + (f | g), data = data, REML = TRUE,
               control = glmmTMBControl())

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
