# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=cg] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 1.1e-01); lme4's optimum is lower: the REML at its theta is higher by 0.0285 (lme4's REML at its theta 78.45700751, at lme4's optimum 78.42850277))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "f" = "character", "g" = "character"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))
data[["g"]] <- factor(data[["g"]], levels = c("m", "ndd", "65", "4", "sp", "oc"))

fit <- lmer(y ~ x + (f | g), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ x + (f | g) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
