# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=bfgs] with.
# Plain R; run in this folder: Rscript lme4.R
# (reference finding in theta: theta differs from lme4's optimum (rel diff 5.9e-01); lme4's optimum is the worse one: lme4's own REML at its theta is lower than lme4's optimum by 0.18 (lme4's REML at its theta 26.80709716, at lme4's optimum 26.98688121))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "g" = "character"))
data[["g"]] <- factor(data[["g"]], levels = c("2", "mh", "sxl", "tbm", "tu", "u"))

fit <- lmer(y ~ 1 + (x | g), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ 1 + (x | g) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
