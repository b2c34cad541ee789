# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=powell] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 2.7e-03); lme4's optimum is lower: the ML at its theta is higher by 9.97e-05 (lme4's ML at its theta 233.8635885, at lme4's optimum 233.8634888))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "s" = "character", "t" = "character"))
data[["s"]] <- factor(data[["s"]], levels = c("b5", "s", "3", "c", "p", "vi"))
data[["t"]] <- factor(data[["t"]], levels = c("p8u", "fse", "2", "n", "wm"))

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
