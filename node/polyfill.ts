/** Kept so entry points and tests written against node/polyfill keep working; see config/polyfill.ts. */
import '../config/polyfill.js'
