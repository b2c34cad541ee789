# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=powell] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 2.5e-03); lme4's optimum is lower: the REML at its theta is higher by 6.26e-05 (lme4's REML at its theta 490.1123368, at lme4's optimum 490.1122742))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "sch.cl" = "character", "tch.cl" = "integer", "e3" = "numeric", "e2" = "numeric", "x1" = "numeric", "e1" = "numeric"))
data[["sch.cl"]] <- factor(data[["sch.cl"]], levels = c("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"))

fit <- lmer(y ~ x1 + (1|sch.cl/tch.cl), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ x1 + (1|sch.cl/tch.cl) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
