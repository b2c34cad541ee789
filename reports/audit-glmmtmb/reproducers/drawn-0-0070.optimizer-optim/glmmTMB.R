# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 3.8e-03); lme4's optimum is lower: the REML at its theta is higher by 7.06e-05 (lme4's REML at its theta 126.4997186, at lme4's optimum 126.4996479))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "g" = "character"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))
data[["g"]] <- factor(data[["g"]], levels = c("2a", "54a", "di", "epw", "i3", "i5u", "mx", "p4", "ra", "rk1"))

fit <- glmmTMB(y ~ x + trt + (1 | g) + (0 + x | g), data = data, REML = TRUE,
               control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS")))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
