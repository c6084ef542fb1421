/**
 * Who am I in a multi-process run? Rank and size come from the launcher's environment:
 * our own launcher (DOSNA_RANK/DOSNA_SIZE), Open MPI, MPICH/Hydra (PMI) and Slurm. With none
 * of them, the script is one rank of one.
 */
import { createHash } from 'node:crypto';
import { DosnaError } from '../errors.js';

export interface RankInfo {
  readonly rank: number;
  readonly size: number;
  /** Which launcher the values came from. */
  readonly launcher: 'dosna' | 'openmpi' | 'mpich' | 'slurm' | 'none';
  /** The hub's address (rank 0). */
  readonly masterAddr: string;
  readonly masterPort: number;
}

const SOURCES = [
  ['dosna', 'DOSNA_RANK', 'DOSNA_SIZE'],
  ['openmpi', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'],
  ['mpich', 'PMI_RANK', 'PMI_SIZE'],
  ['slurm', 'SLURM_PROCID', 'SLURM_NTASKS'],
] as const;

/** The default hub port: torch.distributed's, moved by a hash of the job's id so concurrent jobs on one host do not collide. */
function defaultPort(env: NodeJS.ProcessEnv): number {
  const job = env.PMIX_NAMESPACE ?? env.OMPI_MCA_orte_ess_jobid ?? env.OMPI_MCA_ess_base_jobid
    ?? (env.SLURM_JOB_ID ? `${env.SLURM_JOB_ID}.${env.SLURM_STEP_ID ?? ''}` : undefined) ?? env.PMI_PORT;
  if (!job) return 29500;
  const h = createHash('sha1').update(job).digest().readUInt32BE(0);
  return 29500 + (h % 20000);
}

export function detectRank(env: NodeJS.ProcessEnv = process.env): RankInfo {
  for (const [launcher, rankVar, sizeVar] of SOURCES) {
    if (env[rankVar] === undefined || env[sizeVar] === undefined) continue;
    const rank = Number(env[rankVar]);
    const size = Number(env[sizeVar]);
    if (!Number.isInteger(rank) || !Number.isInteger(size) || size < 1 || rank < 0 || rank >= size) {
      throw new DosnaError(`bad rank environment from ${launcher}: ${rankVar}=${env[rankVar]} ${sizeVar}=${env[sizeVar]}`);
    }
    const port = env.MASTER_PORT ? Number(env.MASTER_PORT) : defaultPort(env);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DosnaError(`bad MASTER_PORT ${env.MASTER_PORT}`);
    return { rank, size, launcher, masterAddr: env.MASTER_ADDR ?? '127.0.0.1', masterPort: port };
  }
  return { rank: 0, size: 1, launcher: 'none', masterAddr: '127.0.0.1', masterPort: 0 };
}
