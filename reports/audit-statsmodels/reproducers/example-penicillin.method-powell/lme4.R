# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=powell] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 1.5e-02); lme4's optimum is lower: the REML at its theta is higher by 0.00212 (lme4's REML at its theta 330.8627121, at lme4's optimum 330.860589))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("diameter" = "numeric", "plate" = "character", "sample" = "character"))
data[["plate"]] <- factor(data[["plate"]], levels = c("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x"))
data[["sample"]] <- factor(data[["sample"]], levels = c("A", "B", "C", "D", "E", "F"))

fit <- lmer(diameter ~ 1 + (1|plate) + (1|sample), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: diameter ~ 1 + (1|plate) + (1|sample) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
