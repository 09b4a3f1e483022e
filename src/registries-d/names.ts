/** The file imagetrust owns in registries.d. */
export const OWNED_REGISTRIES_FILE = 'imagetrust.yaml'
