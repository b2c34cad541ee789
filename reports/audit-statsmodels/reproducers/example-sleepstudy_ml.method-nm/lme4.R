# lme4's fit of the model in this folder: the reference the audit compared statsmodels [method=nm] with.
# Plain R; run in this folder: Rscript lme4.R
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 2.7e-01 > tol 3.0e-13; backward error 2.7e-01 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 3.0e-13 (kappa_V <= 14); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 1.7e+04 (tie 2e-04); forward rel diff 3.0e-01))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("Reaction" = "numeric", "Days" = "numeric", "Subject" = "character"))
data[["Subject"]] <- factor(data[["Subject"]], levels = c("308", "309", "310", "330", "331", "332", "333", "334", "335", "337", "349", "350", "351", "352", "369", "370", "371", "372"))

fit <- lmer(Reaction ~ Days + (Days|Subject), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: Reaction ~ Days + (Days|Subject) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
