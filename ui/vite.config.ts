import { defineConfig } from "vite";

// Built files go to ui/dist, which tauri.conf.json embeds into the binary.
export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false },
});
