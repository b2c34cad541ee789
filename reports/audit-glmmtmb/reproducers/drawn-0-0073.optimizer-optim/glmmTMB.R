# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 6.3e-03 > tol 1.1e-12; backward error 6.3e-03 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 1.1e-12 (kappa_V <= 47); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 2.2e-03 (tie 4e-05); forward rel diff 1.3e-02))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "a" = "character", "b" = "character"))
data[["a"]] <- factor(data[["a"]], levels = c("1", "4r", "9q", "c6j", "e", "e3", "g", "hi5", "j", "k", "kv", "t7a"))
data[["b"]] <- factor(data[["b"]], levels = c("3", "3w", "9em", "pez", "tk", "yz"))

fit <- glmmTMB(y ~ 1 + (1 | a) + (1 | b), data = data, REML = FALSE,
               control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS")))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
