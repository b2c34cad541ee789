# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 1.9e-04 > tol 1.9e-13; backward error 1.9e-04 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 1.9e-13 (kappa_V <= 8.6); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 4.2e-05 (tie 2e-05); forward rel diff 1.1e-03))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "f" = "character", "g" = "integer"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))

fit <- glmmTMB(y ~ x + trt + (f | g), data = data, REML = FALSE,
               control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS")))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
