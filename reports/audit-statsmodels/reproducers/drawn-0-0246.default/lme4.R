# lme4's fit of the model in this folder: the reference the audit compared statsmodels [default] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 1.3e-01); lme4's optimum is lower: the REML at its theta is higher by 0.0559 (lme4's REML at its theta 22.11391073, at lme4's optimum 22.05798801))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "s" = "character", "t" = "character"))
data[["s"]] <- factor(data[["s"]], levels = c("fqs", "v"))
data[["t"]] <- factor(data[["t"]], levels = c("kd", "h9"))

fit <- lmer(y ~ 1 + (1 | t:s) + (1 | s), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ 1 + (1 | t:s) + (1 | s) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
