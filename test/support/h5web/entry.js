// The stock H5Web viewer (ESRF's @h5web/app) on an h5grove server: the app a facility would
// deploy, reduced to its provider. Bundled by esbuild in test/serve-browser.test.ts; the
// server's URL and "file" come from the page's query string (?url=...&file=...).
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { App, H5GroveProvider } from '@h5web/app';
import '@h5web/app/styles.css';

const params = new URLSearchParams(location.search);
createRoot(document.getElementById('root')).render(
  createElement(H5GroveProvider, { url: params.get('url'), filepath: params.get('file') }, createElement(App)),
);
