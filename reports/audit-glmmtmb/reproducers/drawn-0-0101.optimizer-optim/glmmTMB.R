# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 6.3e-05 > tol 2.3e-12; backward error 6.3e-05 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 2.3e-12 (kappa_V <= 1e+02); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 4.5e-06 (tie 2e-06); forward rel diff 1.3e-04))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "g" = "character"))
data[["g"]] <- factor(data[["g"]], levels = c("q9", "y"))

fit <- glmmTMB(y ~ 1 + (x | g), data = data, REML = FALSE,
               control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS")))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
