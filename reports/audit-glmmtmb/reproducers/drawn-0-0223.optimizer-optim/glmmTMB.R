# glmmTMB's fit of the model in this folder, in the configuration audited (optimizer=optim).
# Plain R; run in this folder: Rscript glmmTMB.R   (lme4.R gives the reference)
# (optimization finding in theta: theta differs from lme4's optimum (rel diff 5.2e-02); lme4's optimum is lower: the REML at its theta is higher by 0.00247 (lme4's REML at its theta 174.7290207, at lme4's optimum 174.7265477))
suppressPackageStartupMessages(library(glmmTMB))

data <- read.csv("data.csv", na.strings = "NA", stringsAsFactors = FALSE,
                 colClasses = c("y" = "numeric", "x" = "numeric", "trt" = "character", "s" = "character", "t" = "character"))
data[["trt"]] <- factor(data[["trt"]], levels = c("ctl", "trt"))
data[["s"]] <- factor(data[["s"]], levels = c("1", "8e"))
data[["t"]] <- factor(data[["t"]], levels = c("32d", "a", "n1", "vv", "ym"))

fit <- glmmTMB(y ~ x + trt + (x | s/t), data = data, REML = TRUE,
               control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS")))

cat("glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
cat("\nbeta (fixef(fit)$cond):\n")
print(fixef(fit)$cond, digits = 12)
cat("\nsigma:", format(sigma(fit), digits = 12), "\n")
cat("\nVarCorr(fit)$cond:\n")
print(lapply(VarCorr(fit)$cond, function(m) { m <- unclass(m); attributes(m) <- list(dim = dim(m), dimnames = dimnames(m)); m }), digits = 12)
cat("\ncriterion (-2 logLik):", format(-2 * as.numeric(logLik(fit)), digits = 12), "\n")
cat("convergence:", fit$fit$convergence, " pdHess:", fit$sdr$pdHess, "\n")
