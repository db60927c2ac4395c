"""Training the built-in classifiers: standard, FGSM-RS (Wong et al. 2020), PGD (Madry et al.)."""
