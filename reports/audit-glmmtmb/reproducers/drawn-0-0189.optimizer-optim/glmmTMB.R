# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 1.4e-01); lme4's optimum is lower: the ML at its theta is higher by 0.00912 (lme4's ML at its theta 46.49478667, at lme4's optimum 46.48566565))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "g" = "character"))
data[["g"]] <- factor(data[["g"]], levels = c("n", "9", "7", "m", "od", "nq"))

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
