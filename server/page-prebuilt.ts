/**
 * The page built and compressed ahead of time, when there is one. In the source tree there is none
 * (`undefined`: server/page.ts builds it on the first request); `npm run build`
 * (server/build/build-binary.ts) puts it here in the bundle of the single binary, which carries no
 * client sources.
 */
import type { PageArtifact } from "./page-serve";

export const PREBUILT_PAGE: PageArtifact | undefined = undefined;
