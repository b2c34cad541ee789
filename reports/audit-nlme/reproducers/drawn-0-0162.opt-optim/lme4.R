# lme4's fit of the model in this folder: the reference the audit compared nlme [opt=optim] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 1.2e-02); lme4's optimum is lower: the ML at its theta is higher by 0.000437 (lme4's ML at its theta 7.334300356, at lme4's optimum 7.333863497))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "f" = "character", "g" = "character"))
data[["f"]] <- factor(data[["f"]], levels = c("B", "C"))
data[["g"]] <- factor(data[["g"]], levels = c("0", "2uj"))

fit <- lmer(y ~ 1 + (f | g), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ 1 + (f | g) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
