declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  /** Template tag: `#if ${cond}` / `#elif ${cond}` / `#else` / `#endif` over template literals. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
