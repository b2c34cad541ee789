# lme4's fit of the model in this folder: the reference the audit compared statsmodels [default] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 3.0e-03); lme4's optimum is lower: the ML at its theta is higher by 2.69e-05 (lme4's ML at its theta 19.21795684, at lme4's optimum 19.21792996))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "s" = "character", "t" = "character"))
data[["s"]] <- factor(data[["s"]], levels = c("c", "p"))
data[["t"]] <- factor(data[["t"]], levels = c("p8u", "fse"))

fit <- lmer(y ~ 1 + (1 | s) + (1 | s:t), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ 1 + (1 | s) + (1 | s:t) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
