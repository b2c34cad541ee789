# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=lbfgs] with.
# Plain R; run in this folder: Rscript lme4.R
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 9.4e-01 > tol 2.2e-14; backward error 9.4e-01 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 2.2e-14 (kappa_V <= 1); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 2.3e+02 (tie 4e-05); forward rel diff 1.0e+00))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "g" = "character"))
data[["g"]] <- factor(data[["g"]], levels = c("2pf", "3om", "4", "7d", "a0", "al", "cl", "e7k", "fh", "fx", "k5", "n", "o", "pq", "q3e", "z04", "ze"))

fit <- lmer(y ~ x + (1 | g), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ x + (1 | g) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
