# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (construction finding in beta: its beta is not the GLS beta at that V (rel diff 8.9e-01 > tol 5.5e-11; backward error 8.9e-01 in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), tolerance 5.5e-11 (kappa_V <= 2.5e+03); it costs the criterion (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = 2.0e+00 (tie 4e-06); forward rel diff 9.4e-01))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("tch" = "character", "hdeg" = "character", "math" = "integer"))
data[["tch"]] <- factor(data[["tch"]], levels = c("650", "1102"))
data[["hdeg"]] <- factor(data[["hdeg"]], levels = c("BS/BA", "MS/MA/MEd"), ordered = TRUE)

fit <- glmmTMB(math ~ hdeg + (1 | tch), data = data, REML = FALSE,
               control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS")))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
