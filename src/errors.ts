/**
 * The package's error for what a caller gave it (a run, an image, a setting): a message meant for the
 * user. Its own module so that the data layer can throw it without importing the detector.
 */
export class DetectorError extends Error {}
