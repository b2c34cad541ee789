# lme4's fit of the model in this folder: the reference the audit compared glmmtmb [optimizer=optim] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 1.5e-03); lme4's optimum is lower: the REML at its theta is higher by 0.000244 (lme4's REML at its theta 580.3984132, at lme4's optimum 580.3981697))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "a" = "character", "b" = "character"))
data[["a"]] <- factor(data[["a"]], levels = c("1q", "u", "2", "e", "p", "7hh", "i", "az"))
data[["b"]] <- factor(data[["b"]], levels = c("6", "tzv", "c7", "2g4", "57", "d5", "lm", "60k"))

fit <- lmer(y ~ 1 + (x | a) + (1 | b), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ 1 + (x | a) + (1 | b) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
