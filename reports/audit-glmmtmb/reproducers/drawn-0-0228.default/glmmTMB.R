# glmmTMB's fit of the model in this folder, in the configuration audited (default).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 1.0e+00); lme4's optimum is lower: the ML at its theta is higher by 0.062 (lme4's ML at its theta 79.06425511, at lme4's optimum 79.00223792))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "s" = "character", "t" = "character"))
data[["s"]] <- factor(data[["s"]], levels = c("w", "cv", "010", "a"))
data[["t"]] <- factor(data[["t"]], levels = c("nb", "9k"))

fit <- glmmTMB(y ~ x + (x | s/t), data = data, REML = FALSE,
               control = glmmTMBControl())

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
