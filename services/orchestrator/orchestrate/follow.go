package orchestrate

// defaultReadyLagSeconds is GetReadiness's lag bound when none is asked.
const defaultReadyLagSeconds = 5
