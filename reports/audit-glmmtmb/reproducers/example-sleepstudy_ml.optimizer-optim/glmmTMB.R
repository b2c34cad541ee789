# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 3.8e-02 > tol 1.2e-13; backward error 3.8e-02 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 1.2e-13 (kappa_V <= 5.4); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 4.4e+00 (tie 4e-06); forward rel diff 8.2e-01))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("Reaction" = "numeric", "Days" = "numeric", "Subject" = "character"))
data[["Subject"]] <- factor(data[["Subject"]], levels = c("330", "331"))

fit <- glmmTMB(Reaction ~ Days + (1 | Subject), data = data, REML = FALSE,
               control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS")))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
