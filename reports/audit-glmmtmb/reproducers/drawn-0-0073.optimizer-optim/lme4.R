# lme4's fit of the model in this folder: the reference the audit compared glmmtmb [optimizer=optim] with.
# Plain R; run in this folder: Rscript lme4.R
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 6.3e-03 > tol 1.1e-12; backward error 6.3e-03 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 1.1e-12 (kappa_V <= 47); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 2.2e-03 (tie 4e-05); forward rel diff 1.3e-02))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "a" = "character", "b" = "character"))
data[["a"]] <- factor(data[["a"]], levels = c("1", "4r", "9q", "c6j", "e", "e3", "g", "hi5", "j", "k", "kv", "t7a"))
data[["b"]] <- factor(data[["b"]], levels = c("3", "3w", "9em", "pez", "tk", "yz"))

fit <- lmer(y ~ 1 + (1 | a) + (1 | b), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: y ~ 1 + (1 | a) + (1 | b) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
