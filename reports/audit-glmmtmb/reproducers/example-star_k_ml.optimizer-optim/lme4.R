# lme4's fit of the model in this folder: the reference the audit compared glmmtmb [optimizer=optim] with.
# Plain R; run in this folder: Rscript lme4.R
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 8.9e-01 > tol 5.5e-11; backward error 8.9e-01 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 5.5e-11 (kappa_V <= 2.5e+03); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 2.0e+00 (tie 4e-06); forward rel diff 9.4e-01))
suppressPackageStartupMessages(library(lme4))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("tch" = "character", "hdeg" = "character", "math" = "integer"))
data[["tch"]] <- factor(data[["tch"]], levels = c("650", "1102"))
data[["hdeg"]] <- factor(data[["hdeg"]], levels = c("BS/BA", "MS/MA/MEd"), ordered = TRUE)

fit <- lmer(math ~ hdeg + (1 | tch), data = data, REML = FALSE)

cat("R ", R.version$major, ".", R.version$minor, ", lme4 ", as.character(packageVersion("lme4")), "\n", sep = "")
cat("formula: math ~ hdeg + (1 | tch) (", "ML", ", n = ", nrow(data), ")\n", sep = "")
cat("\nbeta (fixef):\n")
print(fixef(fit), digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nvarcorr (as.data.frame(VarCorr(fit)), residual row last):\n")
print(as.data.frame(VarCorr(fit)), digits = 12)
cat("\ncriterion (deviance, -2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("theta:", format(getME(fit, "theta"), digits = 12), "\n")
