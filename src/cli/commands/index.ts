import { Command } from 'commander';
import { makeUpCommand } from './up';
import { makeServeCommand } from './serve';
import { makeConsumeCommand } from './consume';
import { makeArchiveCommand } from './archive';
import { makeBatchCommand } from './batch';
import { makeVerifyCommand } from './verify';
import { makeStatusCommand } from './status';
import { makeDeadCommand } from './dead';
import { makeEraseCommand } from './erase';
import { makeGetCommand } from './get';
import { makeSimulateCommand } from './simulate';
import { makeMigrateCommand } from './migrate';
import { makeTriggersCommand } from './triggers';
import { makeTrainingSetCommand } from './trainingSet';
import { makeTagsCommand } from './tags';

/** Every command of the `profile` CLI, in the order --help lists them. */
export const COMMANDS: (() => Command)[] = [
  makeUpCommand,
  makeServeCommand,
  makeConsumeCommand,
  makeArchiveCommand,
  makeBatchCommand,
  makeVerifyCommand,
  makeStatusCommand,
  makeDeadCommand,
  makeEraseCommand,
  makeGetCommand,
  makeSimulateCommand,
  makeMigrateCommand,
  makeTriggersCommand,
  makeTrainingSetCommand,
  makeTagsCommand,
];
