# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 1.3e-04 > tol 1.2e-07; backward error 1.3e-04 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 1.2e-07 (kappa_V <= 2.8); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 3.9e-05 (tie 3e-05); forward rel diff 5.4e-04))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "f" = "character", "g" = "character"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))
data[["f"]] <- factor(data[["f"]], levels = c("A", "B", "C"))
data[["g"]] <- factor(data[["g"]], levels = c("0", "0t1", "2uj", "3x", "49", "8", "837", "bh4", "i", "jq", "n5", "oj", "oxy", "p3n", "rj3"))

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
