/**
 * Starts what the selected backends need before any test runs. The core backends need
 * nothing; services for remote backends are started here by the project's own scripts.
 */
export default async function setup(): Promise<void> {}
