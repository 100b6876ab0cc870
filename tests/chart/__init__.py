"""Chart, image and example tests: render the Helm chart, check the Dockerfile's install path."""
