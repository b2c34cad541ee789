# lme4's fit of the model in this folder: the reference the audit compared glmmtmb [optimizer=optim] with.
# Plain R; run in this folder: Rscript lme4.R
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 7.8e-01); lme4's optimum is lower: the REML at its theta is higher by 0.196 (lme4's REML at its theta 29.56508766, at lme4's optimum 29.36910981))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("replicate" = "character", "recipe" = "character", "angle" = "integer"))
data[["replicate"]] <- factor(data[["replicate"]], levels = c("3"))
data[["recipe"]] <- factor(data[["recipe"]], levels = c("A", "C"))

fit <- lmer(angle ~ 1 + (1 | recipe:replicate), data = data, REML = TRUE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: angle ~ 1 + (1 | recipe:replicate) (", "REML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (REML criterion, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
