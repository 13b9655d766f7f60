/**
 * @module Volume type encryption specs (admin, Cinder's volume_type_encryption extension):
 * `GET|POST /types/{id}/encryption`, `GET /types/{id}/encryption/{key}`,
 * `PUT|DELETE /types/{id}/encryption/{encryption_id}`. They are stored with the type (so they belong
 * to the type's site, where writes are forwarded) and shown as Cinder shows them; Atoll has no key
 * manager and encrypts nothing, so a volume of a type with encryption is refused (docs/volume.md).
 * https://docs.openstack.org/api-ref/block-storage/v3/#volume-type-encryption-types
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, novaTime, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { VolumeService } from '../domain/volumes.ts';
import type { TypeGate } from './type-extras.ts';

const CONTROL_LOCATIONS = ['front-end', 'back-end'];
const FIELDS = ['provider', 'cipher', 'key_size', 'control_location'];

/** Cinder's schema: provider and cipher strings up to 255, key_size a non-negative integer, a known control location. */
function specsOf(o: Obj, create: boolean): Obj {
  const extra = Object.keys(o).filter((k) => !FIELDS.includes(k));
  if (extra.length)
    throw new BadRequest(`Invalid input received: unexpected encryption keys ${extra.join(', ')}.`);
  if (create && (o.provider === undefined || o.control_location === undefined))
    throw new BadRequest('Invalid input received: provider and control_location are required.');
  const out: Obj = {};
  if (o.provider !== undefined) {
    if (typeof o.provider !== 'string' || o.provider.length > 255)
      throw new BadRequest('Invalid input received: provider must be a string of at most 255 characters.');
    out.provider = o.provider;
  }
  if (o.cipher !== undefined) {
    if (o.cipher !== null && (typeof o.cipher !== 'string' || o.cipher.length > 255))
      throw new BadRequest('Invalid input received: cipher must be a string of at most 255 characters.');
    out.cipher = o.cipher;
  }
  if (o.key_size !== undefined) {
    const k = o.key_size;
    if (
      k !== null &&
      !(typeof k === 'number' && Number.isInteger(k) && k >= 0) &&
      !(typeof k === 'string' && /^\d+$/.test(k))
    )
      throw new BadRequest('Invalid input received: key_size must be a non-negative integer.');
    out.key_size = k === null ? null : Number(k);
  }
  if (o.control_location !== undefined) {
    if (!CONTROL_LOCATIONS.includes(String(o.control_location)))
      throw new BadRequest(
        `Invalid input received: valid control locations are ${CONTROL_LOCATIONS.join(', ')}.`,
      );
    out.control_location = o.control_location;
  }
  return out;
}

export function registerEncryptionRoutes(
  app: FastifyInstance,
  ctx: ServiceContext,
  svc: VolumeService,
  base: string,
  gate: TypeGate,
): void {
  const encryptionOf = (t: Obj): Obj | undefined => (isObj(t.encryption) ? t.encryption : undefined);
  /** A write: the gate, forwarding to the type's site, and Cinder's "type in use" refusal. */
  const writable = (req: FastifyRequest, reply: FastifyReply, verb: string) => {
    const g = gate(req, reply);
    const forward = forwardIfRemote(ctx, g.owner, req, reply);
    if (!forward && svc.repo.typeInUse(g.id))
      throw new BadRequest(`Cannot ${verb} encryption specs. Volume type in use.`);
    return { ...g, forward };
  };
  const now = () => novaTime(ctx.clock.now());

  app.get(`${base}/:id/encryption`, async (req, reply) => encryptionOf(gate(req, reply).t) ?? {});
  app.get(`${base}/:id/encryption/:key`, async (req, reply) => {
    const { key } = req.params as { key: string };
    const g = gate(req, reply);
    const e = encryptionOf(g.t);
    if (!e || !Object.hasOwn(e, key))
      throw new NotFound(`Volume type encryption for type ${g.id} does not exist.`);
    return { [key]: e[key] };
  });
  app.post(`${base}/:id/encryption`, async (req, reply) => {
    const g = writable(req, reply, 'create');
    if (g.forward) return g.forward;
    const specs = specsOf(wrapped(req.body, 'encryption'), true);
    if (encryptionOf(g.t)) throw new BadRequest(`Volume type encryption for type ${g.id} already exists.`);
    const e: Obj = {
      volume_type_id: g.id,
      encryption_id: ctx.ids.uuid(),
      cipher: null,
      key_size: null,
      ...specs,
      deleted: false,
      created_at: now(),
      updated_at: null,
      deleted_at: null,
    };
    svc.patchType(g.id, { encryption: e });
    return { encryption: { volume_type_id: g.id, encryption_id: e.encryption_id, ...specs } };
  });
  app.put(`${base}/:id/encryption/:encryptionId`, async (req, reply) => {
    const g = writable(req, reply, 'update');
    if (g.forward) return g.forward;
    const specs = specsOf(wrapped(req.body, 'encryption'), false);
    const cur = encryptionOf(g.t);
    if (!cur) throw new NotFound(`Volume type encryption for type ${g.id} does not exist.`);
    svc.patchType(g.id, { encryption: { ...cur, ...specs, updated_at: now() } });
    return { encryption: specs };
  });
  app.delete(`${base}/:id/encryption/:encryptionId`, async (req, reply) => {
    const g = writable(req, reply, 'delete');
    if (g.forward) return g.forward;
    if (!encryptionOf(g.t)) throw new NotFound(`Volume type encryption for type ${g.id} does not exist.`);
    svc.patchType(g.id, { encryption: undefined });
    return reply.code(202).send();
  });
}
