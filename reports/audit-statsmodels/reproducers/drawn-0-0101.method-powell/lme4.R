# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=powell] with.
# Plain R; run in this folder: Rscript lme4.R
# (construction finding in criterion: its criterion is not lme4's at its parameters (rel diff 1.0e-07 > tol 2.3e-12; lme4's ML at its parameters is 23.81913139, its criterion 23.81912891))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "g" = "character"))
data[["g"]] <- factor(data[["g"]], levels = c("q9", "y"))

fit <- lmer(y ~ 1 + (x | g), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ 1 + (x | g) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
