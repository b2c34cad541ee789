# lme4's fit of the model in this folder: the reference the audit compared glmmtmb [optimizer=optim] with.
# Plain R; run in this folder: Rscript lme4.R
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 3.8e-02 > tol 1.2e-13; backward error 3.8e-02 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 1.2e-13 (kappa_V <= 5.4); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 4.4e+00 (tie 4e-06); forward rel diff 8.2e-01))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("Reaction" = "numeric", "Days" = "numeric", "Subject" = "character"))
data[["Subject"]] <- factor(data[["Subject"]], levels = c("330", "331"))

fit <- lmer(Reaction ~ Days + (1 | Subject), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: Reaction ~ Days + (1 | Subject) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
