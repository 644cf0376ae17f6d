import { QmpError } from './errors.ts';
import { isJsonObject } from './json-value.ts';
import { qdictKeyOrder } from './qdict-order.ts';
import type { Schema } from '../schema/index.ts';
import type { CommandArguments, CommandName, CommandResults } from '../schema/generated/qapi-types.ts';

/** What a command handler may know about the client that sent the command. */
export interface SessionView {
  readonly id: number;
  negotiated: boolean;
  oobEnabled: boolean;
}

/** A command's handler, typed by the schema: it gets the checked arguments and returns the declared result. */
export type CommandHandler<C extends CommandName> = (
  args: CommandArguments[C],
  session: SessionView,
) => CommandResults[C] | Promise<CommandResults[C]>;

/** One handler for every command of the schema. */
export type CommandTable = { [C in CommandName]: CommandHandler<C> };

export type Reply = { return: unknown; id?: unknown } | { error: { class: string; desc: string }; id?: unknown };

const NEGOTIATION_COMMANDS = new Set(['qmp_capabilities']);

/**
 * Turns one parsed QMP request into one reply, following QEMU's qmp_dispatch:
 * envelope checks in QDict member order, command lookup, negotiation gate,
 * schema validation of the arguments, then the handler.
 */
export class Dispatcher {
  constructor(
    private readonly schema: Schema,
    private readonly handlers: CommandTable,
    private readonly onCommand?: (name: string, ms: number, error?: QmpError) => void,
    /** True while background work (a running block job) waits for the event loop. */
    readonly backgroundWorkPending: () => boolean = () => false,
  ) {}

  async dispatch(request: unknown, session: SessionView): Promise<Reply> {
    if (!isJsonObject(request)) return errorReply(new QmpError('QMP input must be a JSON object'));
    const envelope = request;
    const withId = (reply: Reply): Reply => ('id' in envelope ? { ...reply, id: envelope.id } : reply);
    try {
      const { name, args } = this.checkEnvelope(envelope, session);
      const started = performance.now();
      try {
        const result = await this.invoke(name, args, session);
        this.onCommand?.(name, performance.now() - started);
        return withId({ return: result });
      } catch (error) {
        const qmpError = asQmpError(error);
        this.onCommand?.(name, performance.now() - started, qmpError);
        throw qmpError;
      }
    } catch (error) {
      return withId(errorReply(this.negotiationView(asQmpError(error), session)));
    }
  }

  private checkEnvelope(envelope: Record<string, unknown>, session: SessionView) {
    for (const member of qdictKeyOrder(Object.keys(envelope))) {
      const value = envelope[member];
      if (member === 'execute' || (member === 'exec-oob' && session.oobEnabled)) {
        if (typeof value !== 'string') throw new QmpError(`QMP input member '${member}' must be a string`);
      } else if (member === 'arguments') {
        if (!isJsonObject(value)) throw new QmpError("QMP input member 'arguments' must be an object");
      } else if (member !== 'id') {
        throw new QmpError(`QMP input member '${member}' is unexpected`);
      }
    }
    const hasExecute = 'execute' in envelope;
    const isOob = 'exec-oob' in envelope;
    if (hasExecute && isOob) throw new QmpError("QMP input member 'execute' clashes with 'exec-oob'");
    if (!hasExecute && !isOob) throw new QmpError("QMP input lacks member 'execute'");
    const name = (hasExecute ? envelope.execute : envelope['exec-oob']) as string;
    const available = session.negotiated || NEGOTIATION_COMMANDS.has(name);
    if (!available || !this.schema.hasCommand(name)) {
      throw new QmpError(`The command ${name} has not been found`, 'CommandNotFound');
    }
    if (isOob) throw new QmpError(`The command ${name} does not support OOB`);
    return { name, args: envelope.arguments as Record<string, unknown> | undefined };
  }

  private async invoke<C extends CommandName>(name: C, rawArgs: Record<string, unknown> | undefined, session: SessionView) {
    const args = this.schema.validateCommandArguments(name, rawArgs);
    const handler: CommandHandler<C> = this.handlers[name];
    return handler(args, session);
  }

  /** Before negotiation QEMU rewrites every CommandNotFound into a hint. */
  private negotiationView(error: QmpError, session: SessionView): QmpError {
    if (!session.negotiated && error.errorClass === 'CommandNotFound') {
      return new QmpError("Expecting capabilities negotiation with 'qmp_capabilities'", 'CommandNotFound');
    }
    return error;
  }
}

function errorReply(error: QmpError): Reply {
  return { error: error.toWire() };
}

function asQmpError(error: unknown): QmpError {
  if (error instanceof QmpError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new QmpError(`Internal error: ${message}`);
}
