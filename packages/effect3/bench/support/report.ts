// The benchmarks' reporting is one file for both lines: packages/shared/bench/report.ts.
export * from "../../../shared/bench/report.js"
