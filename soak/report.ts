import { ROLES, type SoakReport } from './shared.js';

/* The report for people (the machine-readable one is the `SOAK RESULT {json}` line). */

export function printReport(report: SoakReport): void {
  const lines = [
    '',
    `Tollgate soak — store ${report.store}, seed ${report.seed}, commit ${report.commit}: ${report.ok ? 'OK' : 'FAILED'}`,
    `  logical signals sent      ${report.logicalSignals} (poison: ${report.poison})`,
    `  copies sent               ${report.copies.sent} (processed ${report.copies.processed}, duplicate answers ${report.copies.duplicate}, already consumed ${report.copies.alreadyConsumed}, gave up ${report.copies.failed}; HTTP retries ${report.copies.retries})`,
    `  faults injected           ${report.faultsTotal}: ${Object.entries(report.faults)
      .map(([kind, n]) => `${kind}=${n}`)
      .join(' ')}`,
    `  applied per hop           ${ROLES.map((role) => `${role}=${report.appliedPerHop[role]}/${report.expectedPerHop[role]}`).join(' ')}`,
    `  signals lost              ${report.lost}`,
    `  double applications       ${report.doubleApplications}`,
    `  tokens left in flight     ${report.tokensLeftInFlight}`,
    `  dead-lettered             ${report.deadLettered.signals} signals (${report.deadLettered.messages} messages), poison ${report.poison}`,
    `  store size                ${report.store_.tokenRows} token rows for ${report.logicalSignals} signals (expected ${report.store_.expectedTokenRows}; ${report.store_.rowsPerSignal} per signal)`,
    `  time                      sending ${report.timing.sendingSeconds}s, quiescence ${report.timing.quiescenceSeconds}s`,
    ...report.violations.map((violation) => `  VIOLATION: ${violation}`),
    '',
  ];
  process.stdout.write(lines.join('\n'));
}
