# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=nm] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 5.4e-01); lme4's optimum is lower: the ML at its theta is higher by 3.09 (lme4's ML at its theta 333.0231022, at lme4's optimum 329.9341366))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "f" = "character", "g" = "character"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))
data[["g"]] <- factor(data[["g"]], levels = c("0", "0t1", "2uj", "3x", "49", "8", "837", "bh4", "i", "jq", "n5", "oj", "oxy", "p3n", "rj3"))

fit <- lmer(y ~ x + trt + (f | g), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ x + trt + (f | g) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
