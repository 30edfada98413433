"""HTTP service that denoises grayscale digit images with a convolutional autoencoder."""
