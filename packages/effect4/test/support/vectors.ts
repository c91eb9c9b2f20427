// The test vectors' readers are one file for both lines: packages/shared/test-support/vectors.ts.
export * from "../../../shared/test-support/vectors.js"
