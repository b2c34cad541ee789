# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=powell] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 2.9e-03); lme4's optimum is lower: the REML at its theta is higher by 4.24e-05 (lme4's REML at its theta 126.4996904, at lme4's optimum 126.4996479))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "g" = "character"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))
data[["g"]] <- factor(data[["g"]], levels = c("2a", "54a", "di", "epw", "i3", "i5u", "mx", "p4", "ra", "rk1"))

fit <- lmer(y ~ x + trt + (1 | g) + (0 + x | g), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ x + trt + (1 | g) + (0 + x | g) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
