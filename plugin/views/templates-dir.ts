// Where the plugin's own templates, messages and assets are, in a checkout and in the build
// (`dist/plugin/views/` → `dist/templates/`, as `plugin/views/` → `templates/`).
import { fileURLToPath } from 'node:url'

export const PLUGIN_TEMPLATES_DIR = fileURLToPath(new URL('../../templates', import.meta.url))
export const PLUGIN_ASSETS_DIR = fileURLToPath(new URL('../../assets', import.meta.url))
