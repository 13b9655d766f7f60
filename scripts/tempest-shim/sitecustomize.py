"""System-scoped admins for Tempest 33's identity admin tests (loaded by scripts/tempest.mjs).

Tempest 33 forces dynamic credentials on its identity admin classes (force_tenant_isolation) and
makes their admin the admin of a fresh project, with project-scoped tokens. On a cloud that enforces
scope (Keystone with enforce_scope, or Atoll, where only the admin role on the system or on the admin
project makes a cloud admin) those tests get 403. Later Tempest releases give these classes system
scope when [enforce_scope] keystone is true; this does the same for Tempest 33, and nothing else:

- a dynamic admin user also gets the identity admin role on the system;
- the identity admin test classes (tempest.api.identity.base.BaseIdentityV3AdminTest) ask for
  system-scoped tokens, as they ask for domain-scoped ones with [identity] admin_domain_scope.

Only active with ATOLL_TEMPEST_SYSTEM_SCOPE=1 in the environment; a module's code is patched right
after it is first imported, so importing this file costs nothing.
"""
import importlib.abc
import importlib.machinery
import os
import sys


def _patch_dynamic_creds(module):
    provider = module.DynamicCredentialProvider
    create = provider._create_creds

    def _create_creds(self, admin=False, roles=None, scope='project'):
        creds = create(self, admin=admin, roles=roles, scope=scope)
        if admin and scope == 'project' and self.identity_version == 'v3':
            user = {'id': creds.credentials.user_id}
            self.creds_client.assign_user_role_on_system(user, self.identity_admin_role)
        return creds

    provider._create_creds = _create_creds


def _patch_identity_base(module):
    cls = module.BaseIdentityV3AdminTest
    setup = cls.setup_clients.__func__

    def setup_clients(klass):
        setup(klass)
        klass.os_admin.auth_provider.scope = 'system'

    cls.setup_clients = classmethod(setup_clients)


_PATCHES = {
    'tempest.lib.common.dynamic_creds': _patch_dynamic_creds,
    'tempest.api.identity.base': _patch_identity_base,
}


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get('ATOLL_TEMPEST_SYSTEM_SCOPE') == '1':
    sys.meta_path.insert(0, _AfterImport())
