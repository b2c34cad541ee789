# glmmTMB's fit of the model in this folder, in the configuration audited (default).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 6.9e-05 > tol 9.8e-14; backward error 6.9e-05 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 9.8e-14 (kappa_V <= 4.4); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 7.1e-06 (tie 6e-06); forward rel diff 1.4e-04))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "f" = "character", "g" = "integer"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))

fit <- glmmTMB(y ~ 1 + (f | g), data = data, REML = FALSE,
               control = glmmTMBControl())

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
