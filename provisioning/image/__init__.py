"""SD-card images: read a published base image, customise its boot partition, write it out."""
