# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=nm] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 7.3e-01); lme4's optimum is lower: the REML at its theta is higher by 13.9 (lme4's REML at its theta 347.3144172, at lme4's optimum 333.3998507))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "f" = "character", "g" = "character"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))
data[["g"]] <- factor(data[["g"]], levels = c("qdc", "f3j", "z2", "51l", "7js", "q", "4", "k", "kcq", "lx", "pw", "o7q", "v", "6d7", "qi", "1a", "3", "1v"))

fit <- lmer(y ~ x + trt + (0 + f | g), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ x + trt + (0 + f | g) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
