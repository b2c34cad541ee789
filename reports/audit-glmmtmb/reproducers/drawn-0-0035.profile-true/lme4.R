# lme4's fit of the model in this folder: the reference the audit compared glmmtmb [profile=true] with.
# Plain R; run in this folder: Rscript lme4.R
# (reference finding in theta: theta differs from lme4's optimum (rel diff 1.9e+00); lme4's optimum is the worse one: lme4's own ML at its theta is lower than lme4's optimum by 0.0779 (lme4's ML at its theta 59.78000156, at lme4's optimum 59.85788762))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "f" = "character", "g" = "integer"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))

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
